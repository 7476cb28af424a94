// Behavioural simulation model of the Lattice ECP5 MULT18X18D, for Verilator.
// Covers the configuration fpgallm.hdl.dsp instantiates: A x B (SIGNEDA / SIGNEDB), the A/B
// input registers and the output register each either bypassed ("NONE") or clocked by CLK0
// with CE0 as enable and RST0 as synchronous reset; no pipeline register, no cascade (C,
// SRIA/SRIB, SOURCEA/SOURCEB tied low).  Synthesis uses the vendor primitive instead
// (yosys synth_ecp5 knows it as a black box); this file is never synthesized.
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNUSEDPARAM */
module MULT18X18D #(
    parameter REG_INPUTA_CLK = "NONE",
    parameter REG_INPUTB_CLK = "NONE",
    parameter REG_OUTPUT_CLK = "NONE",
    parameter GSR = "DISABLED"
) (
    input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK0, CE0, RST0,
    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17,
    output P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33,
    output P34, P35
);
    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg [17:0] a_r, b_r;
    reg sa_r, sb_r;
    reg [35:0] p_r;
    initial begin
        a_r = 18'd0; b_r = 18'd0; sa_r = 1'b0; sb_r = 1'b0; p_r = 36'd0;
    end
    always @(posedge CLK0) begin
        if (RST0) begin
            a_r <= 18'd0; b_r <= 18'd0; sa_r <= 1'b0; sb_r <= 1'b0;
        end else if (CE0) begin
            a_r <= a; b_r <= b; sa_r <= SIGNEDA; sb_r <= SIGNEDB;
        end
    end
    wire [17:0] ma = (REG_INPUTA_CLK == "NONE") ? a : a_r;
    wire [17:0] mb = (REG_INPUTB_CLK == "NONE") ? b : b_r;
    wire msa = (REG_INPUTA_CLK == "NONE") ? SIGNEDA : sa_r;
    wire msb = (REG_INPUTB_CLK == "NONE") ? SIGNEDB : sb_r;
    wire signed [36:0] ya = msa ? {{19{ma[17]}}, ma} : {19'd0, ma};
    wire signed [36:0] yb = msb ? {{19{mb[17]}}, mb} : {19'd0, mb};
    wire signed [73:0] prod = ya * yb;
    always @(posedge CLK0) begin
        if (RST0) p_r <= 36'd0;
        else if (CE0) p_r <= prod[35:0];
    end
    wire [35:0] p = (REG_OUTPUT_CLK == "NONE") ? prod[35:0] : p_r;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
            P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
endmodule
