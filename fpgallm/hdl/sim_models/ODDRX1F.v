// Behavioural model of the Lattice ECP5 ODDRX1F (an output DDR register), for Verilator
// lint and simulation of the open-source board tops: Q carries D0 while SCLK is high and D1
// while it is low (D0/D1 sampled at the rising edge), RST clears it.  Synthesis uses the
// vendor primitive (yosys synth_ecp5 knows it); this file is never synthesized.
module ODDRX1F (
    input  wire D0,
    input  wire D1,
    input  wire SCLK,
    input  wire RST,
    output wire Q
);
    reg q0;
    reg q1;
    always @(posedge SCLK) begin
        q0 <= RST ? 1'b0 : D0;
        q1 <= RST ? 1'b0 : D1;
    end
    assign Q = SCLK ? q0 : q1;
endmodule
