// fpgallm_board_sim: simulation wrapper of an open-source board top with the decode engine
// (fpgallm_board_top, generated) and the behavioural SDRAM (fpgallm_sdram_model) on its
// SDRAM pins, so that the whole board design -- engine, SDRAM controller, UART host bridge
// -- runs in Verilator with only the serial line and the LEDs at the top (hand-written,
// not generated; never synthesized).
module fpgallm_board_sim #(
    parameter integer ROW_BITS = 13,
    parameter integer N_LEDS = 8
) (
    input  wire              clk,
    input  wire              uart_rx,
    output wire              uart_tx,
    output wire [N_LEDS-1:0] led
);
    wire sdram_clk, sdram_cke, sdram_csn, sdram_rasn, sdram_casn, sdram_wen;
    wire [1:0] sdram_ba;
    wire [ROW_BITS-1:0] sdram_a;
    wire [1:0] sdram_dqm;
    wire [15:0] sdram_d;

    fpgallm_board_top u_top (
        .clk_in(clk), .btn_reset(1'b1), .led(led), .uart_rx(uart_rx), .uart_tx(uart_tx),
        .sdram_clk(sdram_clk), .sdram_cke(sdram_cke), .sdram_csn(sdram_csn),
        .sdram_rasn(sdram_rasn), .sdram_casn(sdram_casn), .sdram_wen(sdram_wen),
        .sdram_ba(sdram_ba), .sdram_a(sdram_a), .sdram_dqm(sdram_dqm), .sdram_d(sdram_d)
    );

    fpgallm_sdram_model #(.ROW_BITS(ROW_BITS)) u_sdram (
        .clk(clk), .cke(sdram_cke), .cs_n(sdram_csn), .ras_n(sdram_rasn), .cas_n(sdram_casn),
        .we_n(sdram_wen), .ba(sdram_ba), .a(sdram_a), .dqm(sdram_dqm), .dq(sdram_d)
    );
endmodule
