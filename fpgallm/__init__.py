"""fpgallm: FPGA accelerators for large-language-model inference.

Python generators emit RTL for matrix engines, vector units and a decode engine;
cocotb testbenches on Verilator prove it bit-exact against NumPy golden models.
"""

__version__ = "0.1.0"
