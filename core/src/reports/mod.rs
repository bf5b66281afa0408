//! Weekly and monthly progress reports. So far: the periods they cover.

pub mod period;
