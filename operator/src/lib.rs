//! LabelJob operator.
