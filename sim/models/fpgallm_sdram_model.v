// fpgallm_sdram_model: behavioural 16-bit SDR SDRAM for simulating a board top with the
// fpgallm SDRAM controller (hand-written, not generated; never synthesized).
//
// - Clocked by the controller's clock (the board's SDRAM clock is that clock inverted: the
//   chip samples mid-cycle), so a command is the pin values of one controller cycle.
// - Commands (cs_n, ras_n, cas_n, we_n): ACTIVE opens a row per bank, READ/WRITE use it,
//   PRECHARGE / AUTO REFRESH / LOAD MODE are accepted; the mode register sets the burst
//   length (A[2:0]) and the CAS latency (A[6:4]).
// - READ at cycle n: halfword j of the burst is driven on dq in cycle n + CL + j.  WRITE at
//   cycle n: halfword j is taken from dq in cycle n + j, bytes masked by dqm.
// - Halfword address: {row, bank, column} (the controller's map), 2**WORDS_LOG2 halfwords;
//   contents load at time 0 from the $readmemh file named by +fpgallm_sdram=<file>.
/* verilator lint_off UNUSEDSIGNAL */
module fpgallm_sdram_model #(
    parameter integer ROW_BITS = 13,
    parameter integer COL_BITS = 9,
    parameter integer WORDS_LOG2 = 24
) (
    input  wire                clk,
    input  wire                cke,
    input  wire                cs_n,
    input  wire                ras_n,
    input  wire                cas_n,
    input  wire                we_n,
    input  wire [1:0]          ba,
    input  wire [ROW_BITS-1:0] a,
    input  wire [1:0]          dqm,
    inout  wire [15:0]         dq
);
    reg [15:0] mem [0:(1 << WORDS_LOG2) - 1];
    reg [ROW_BITS-1:0] open_row [0:3];
    reg [2:0] bl_code = 3'd0;
    reg [2:0] cl = 3'd2;
    reg [15:0] drive = 16'd0;
    reg drive_en = 1'b0;
    // read schedule: slot (cycle mod 16) -> halfword address to drive in that cycle
    reg        sched_v [0:15];
    reg [WORDS_LOG2-1:0] sched_a [0:15];
    reg [31:0] cycle = 32'd0;
    // write burst in progress
    reg [3:0]  wr_left = 4'd0;
    reg [WORDS_LOG2-1:0] wr_addr = {WORDS_LOG2{1'b0}};
    integer i;
    reg [1023:0] fname;

    initial begin
        for (i = 0; i < 16; i = i + 1) begin
            sched_v[i] = 1'b0;
            sched_a[i] = {WORDS_LOG2{1'b0}};
        end
        for (i = 0; i < 4; i = i + 1)
            open_row[i] = {ROW_BITS{1'b0}};
        if ($value$plusargs("fpgallm_sdram=%s", fname))
            $readmemh(fname, mem);
    end

    wire [3:0] cmd = {cs_n, ras_n, cas_n, we_n};
    wire [3:0] bl = (bl_code == 3'd0) ? 4'd1 : (bl_code == 3'd1) ? 4'd2 : (bl_code == 3'd2) ? 4'd4 : 4'd8;
    wire [WORDS_LOG2-1:0] base = {open_row[ba], ba, a[COL_BITS-1:0]};

    function automatic [15:0] masked(input [15:0] old, input [15:0] new_, input [1:0] m);
        masked = {m[1] ? old[15:8] : new_[15:8], m[0] ? old[7:0] : new_[7:0]};
    endfunction

    always @(posedge clk) begin
        // the halfword (if any) to drive in the next cycle
        drive_en <= sched_v[(cycle + 32'd1) & 32'd15];
        drive <= mem[sched_a[(cycle + 32'd1) & 32'd15]];
        sched_v[(cycle + 32'd1) & 32'd15] <= 1'b0;
        if (wr_left != 4'd0) begin
            mem[wr_addr] <= masked(mem[wr_addr], dq, dqm);
            wr_addr <= wr_addr + 1'b1;
            wr_left <= wr_left - 4'd1;
        end
        if (cke) begin
            case (cmd)
                4'b0011: open_row[ba] <= a;                       // ACTIVE
                4'b0101: begin                                    // READ
                    for (i = 0; i < 8; i = i + 1)
                        if (i < bl) begin
                            sched_v[(cycle + cl + i) & 32'd15] <= 1'b1;
                            sched_a[(cycle + cl + i) & 32'd15] <= base + i[WORDS_LOG2-1:0];
                        end
                end
                4'b0100: begin                                    // WRITE: halfword 0 now
                    mem[base] <= masked(mem[base], dq, dqm);
                    wr_addr <= base + 1'b1;
                    wr_left <= bl - 4'd1;
                end
                4'b0000: begin                                    // LOAD MODE
                    bl_code <= a[2:0];
                    cl <= a[6:4];
                end
                default: ;                                        // NOP, PRECHARGE, REFRESH
            endcase
        end
        cycle <= cycle + 32'd1;
    end

    assign dq = drive_en ? drive : 16'bz;
endmodule
