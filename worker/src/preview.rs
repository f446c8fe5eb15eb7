//! Preview: draw the boxes of a COCO file onto its images (PNG contact sheet).
