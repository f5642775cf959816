//! A stopped process in, a report out: runs unwind, symbolize, python and merge in order.
