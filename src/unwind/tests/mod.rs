mod aarch64;
mod elf;
mod fuzz;
mod real;
mod synth;
