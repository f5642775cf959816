//! Writing report files.
