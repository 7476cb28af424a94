"""Shared hardware-generation helpers: Verilog emission, fixed-point arithmetic, pipelines."""
