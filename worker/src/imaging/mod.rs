//! Image decoding and resizing: bytes → oriented RGB pixels → model-sized input.
