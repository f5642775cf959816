mod elf;
mod fuzz;
mod real;
mod synth;
