// fpgallm_axi_mem: fast AXI4 slave memory model for simulation (hand-written, not generated).
//
// - INCR bursts of full-width beats (FIXED and WRAP are treated as INCR), up to 256 beats;
//   addresses are word aligned; the memory holds 2**WORDS_LOG2 words and wraps beyond.
// - Reads: up to MAX_OUTSTANDING bursts in flight; the first beat of a burst is valid
//   READ_LATENCY (>= 2) cycles after its AR handshake (later when queued behind others).
// - Bandwidth: each of the read and write data channels moves at most RATE_NUM beats per
//   RATE_DEN cycles (token bucket, bursts of up to one beat above the rate).
// - MAX_OUTSTANDING must be a power of two.
// - Writes honour WSTRB; one B response per burst after its last W beat.
// - Contents load at time 0 from the hex file named by the plusarg +<PLUSARG>=<file>
//   ($readmemh format, one DATA_WIDTH word per line), so one build serves any image.
// - Counters (read_beats, write_beats) are outputs for bandwidth measurements.
/* verilator lint_off UNUSEDSIGNAL */
module fpgallm_axi_mem #(
    parameter integer DATA_WIDTH = 256,
    parameter integer ADDR_WIDTH = 32,
    parameter integer ID_WIDTH = 4,
    parameter integer WORDS_LOG2 = 16,
    parameter integer READ_LATENCY = 20,
    parameter integer RATE_NUM = 1,
    parameter integer RATE_DEN = 1,
    parameter integer MAX_OUTSTANDING = 16,
    parameter PLUSARG = "fpgallm_mem"
) (
    input  wire                    clk,
    input  wire                    rst,
    // write address
    input  wire [ID_WIDTH-1:0]     s_axi_awid,
    input  wire [ADDR_WIDTH-1:0]   s_axi_awaddr,
    input  wire [7:0]              s_axi_awlen,
    input  wire [2:0]              s_axi_awsize,
    input  wire [1:0]              s_axi_awburst,
    input  wire                    s_axi_awvalid,
    output wire                    s_axi_awready,
    // write data
    input  wire [DATA_WIDTH-1:0]   s_axi_wdata,
    input  wire [DATA_WIDTH/8-1:0] s_axi_wstrb,
    input  wire                    s_axi_wlast,
    input  wire                    s_axi_wvalid,
    output wire                    s_axi_wready,
    // write response
    output wire [ID_WIDTH-1:0]     s_axi_bid,
    output wire [1:0]              s_axi_bresp,
    output wire                    s_axi_bvalid,
    input  wire                    s_axi_bready,
    // read address
    input  wire [ID_WIDTH-1:0]     s_axi_arid,
    input  wire [ADDR_WIDTH-1:0]   s_axi_araddr,
    input  wire [7:0]              s_axi_arlen,
    input  wire [2:0]              s_axi_arsize,
    input  wire [1:0]              s_axi_arburst,
    input  wire                    s_axi_arvalid,
    output wire                    s_axi_arready,
    // read data
    output reg  [ID_WIDTH-1:0]     s_axi_rid,
    output reg  [DATA_WIDTH-1:0]   s_axi_rdata,
    output wire [1:0]              s_axi_rresp,
    output reg                     s_axi_rlast,
    output reg                     s_axi_rvalid,
    input  wire                    s_axi_rready,
    // statistics
    output reg  [63:0]             read_beats,
    output reg  [63:0]             write_beats,
    // dump words dump_lo..dump_hi to <+PLUSARG_dump>.<n>.hex on a dump pulse (n counts dumps)
    input  wire                    dump,
    input  wire [WORDS_LOG2-1:0]   dump_lo,
    input  wire [WORDS_LOG2-1:0]   dump_hi
);
    localparam integer BYTES = DATA_WIDTH / 8;
    localparam integer LSB = $clog2(BYTES);
    localparam integer QLOG2 = $clog2(MAX_OUTSTANDING);
    localparam integer TOKW = 32;

    reg [DATA_WIDTH-1:0] mem [0:(1 << WORDS_LOG2) - 1];
    reg [1023:0] init_file;
    initial begin
        if ($value$plusargs({PLUSARG, "=%s"}, init_file)) $readmemh(init_file, mem);
    end

    string dump_prefix;
    integer dump_count;
    initial begin
        dump_count = 0;
        if (!$value$plusargs({PLUSARG, "_dump=%s"}, dump_prefix)) dump_prefix = "";
    end
    always @(posedge clk) begin
        if (dump && dump_prefix != "") begin
            $writememh($sformatf("%s.%0d.hex", dump_prefix, dump_count), mem, dump_lo, dump_hi);
            dump_count <= dump_count + 1;
        end
    end

    reg [63:0] now;

    // ---------------- read path ----------------
    reg [ID_WIDTH-1:0]   arq_id   [0:MAX_OUTSTANDING-1];
    reg [WORDS_LOG2-1:0] arq_addr [0:MAX_OUTSTANDING-1];
    reg [7:0]            arq_len  [0:MAX_OUTSTANDING-1];
    reg [63:0]           arq_due  [0:MAX_OUTSTANDING-1];
    reg [QLOG2:0] arq_wr, arq_rd;
    wire [QLOG2:0] arq_count = arq_wr - arq_rd;
    wire arq_full  = arq_count[QLOG2];
    wire arq_empty = arq_wr == arq_rd;
    assign s_axi_arready = !rst && !arq_full;
    assign s_axi_rresp = 2'b00;

    reg                  rd_active;
    reg [ID_WIDTH-1:0]   rd_id;
    reg [WORDS_LOG2-1:0] rd_addr;
    reg [7:0]            rd_left;
    reg [TOKW-1:0]       rd_tokens;

    wire [QLOG2-1:0] arq_head = arq_rd[QLOG2-1:0];
    wire rd_slot = !s_axi_rvalid || s_axi_rready;        // output register free this cycle
    wire rd_rate = rd_tokens >= RATE_DEN;
    wire start_burst = !rd_active && !arq_empty && (arq_due[arq_head] <= now);
    wire have_beat = rd_active || start_burst;
    wire send_beat = have_beat && rd_slot && rd_rate;
    wire [WORDS_LOG2-1:0] beat_addr = rd_active ? rd_addr : arq_addr[arq_head];
    wire [7:0]            beat_left = rd_active ? rd_left : arq_len[arq_head];
    wire [ID_WIDTH-1:0]   beat_id   = rd_active ? rd_id   : arq_id[arq_head];

    always @(posedge clk) begin
        if (rst) begin
            now <= 0;
            arq_wr <= 0; arq_rd <= 0;
            rd_active <= 0; rd_left <= 0; rd_addr <= 0; rd_id <= 0;
            rd_tokens <= RATE_DEN;
            s_axi_rvalid <= 0; s_axi_rlast <= 0; s_axi_rid <= 0; s_axi_rdata <= 0;
            read_beats <= 0;
        end else begin
            now <= now + 1;
            if (s_axi_arvalid && s_axi_arready) begin
                arq_id[arq_wr[QLOG2-1:0]]   <= s_axi_arid;
                arq_addr[arq_wr[QLOG2-1:0]] <= s_axi_araddr[LSB +: WORDS_LOG2];
                arq_len[arq_wr[QLOG2-1:0]]  <= s_axi_arlen;
                arq_due[arq_wr[QLOG2-1:0]]  <= now + 64'(READ_LATENCY - 1);
                arq_wr <= arq_wr + 1;
            end
            if (send_beat) begin
                s_axi_rvalid <= 1;
                s_axi_rdata  <= mem[beat_addr];
                s_axi_rid    <= beat_id;
                s_axi_rlast  <= beat_left == 0;
                read_beats   <= read_beats + 1;
                rd_tokens    <= rd_tokens - RATE_DEN + RATE_NUM;
                if (start_burst) arq_rd <= arq_rd + 1;
                rd_active <= beat_left != 0;
                rd_addr   <= beat_addr + 1;
                rd_left   <= beat_left - 1;
                rd_id     <= beat_id;
            end else begin
                if (s_axi_rready) s_axi_rvalid <= 0;
                if (rd_tokens < RATE_DEN + RATE_NUM) rd_tokens <= rd_tokens + RATE_NUM;
            end
        end
    end

    // ---------------- write path ----------------
    reg [ID_WIDTH-1:0]   awq_id   [0:MAX_OUTSTANDING-1];
    reg [WORDS_LOG2-1:0] awq_addr [0:MAX_OUTSTANDING-1];
    reg [QLOG2:0] awq_wr, awq_rd;
    reg [ID_WIDTH-1:0] bq_id [0:MAX_OUTSTANDING-1];
    reg [QLOG2:0] bq_wr, bq_rd;
    reg [WORDS_LOG2-1:0] wr_offset;
    reg [TOKW-1:0] wr_tokens;
    wire [QLOG2:0] awq_count = awq_wr - awq_rd;
    wire [QLOG2:0] bq_count = bq_wr - bq_rd;
    wire awq_full  = awq_count[QLOG2];
    wire awq_empty = awq_wr == awq_rd;
    wire bq_full   = bq_count[QLOG2];
    wire bq_empty  = bq_wr == bq_rd;
    assign s_axi_awready = !rst && !awq_full;
    assign s_axi_wready  = !rst && !awq_empty && !bq_full && (wr_tokens >= RATE_DEN);
    assign s_axi_bvalid  = !bq_empty;
    assign s_axi_bid     = bq_id[bq_rd[QLOG2-1:0]];
    assign s_axi_bresp   = 2'b00;
    wire [WORDS_LOG2-1:0] waddr = awq_addr[awq_rd[QLOG2-1:0]] + wr_offset;

    integer i;
    always @(posedge clk) begin
        if (rst) begin
            awq_wr <= 0; awq_rd <= 0; bq_wr <= 0; bq_rd <= 0; wr_offset <= 0;
            wr_tokens <= RATE_DEN;
            write_beats <= 0;
        end else begin
            if (s_axi_awvalid && s_axi_awready) begin
                awq_id[awq_wr[QLOG2-1:0]]   <= s_axi_awid;
                awq_addr[awq_wr[QLOG2-1:0]] <= s_axi_awaddr[LSB +: WORDS_LOG2];
                awq_wr <= awq_wr + 1;
            end
            if (s_axi_wvalid && s_axi_wready) begin
                for (i = 0; i < BYTES; i = i + 1)
                    if (s_axi_wstrb[i]) mem[waddr][i*8 +: 8] <= s_axi_wdata[i*8 +: 8];
                write_beats <= write_beats + 1;
                wr_tokens <= wr_tokens - RATE_DEN + RATE_NUM;
                if (s_axi_wlast) begin
                    wr_offset <= 0;
                    awq_rd <= awq_rd + 1;
                    bq_id[bq_wr[QLOG2-1:0]] <= awq_id[awq_rd[QLOG2-1:0]];
                    bq_wr <= bq_wr + 1;
                end else begin
                    wr_offset <= wr_offset + 1;
                end
            end else if (wr_tokens < RATE_DEN + RATE_NUM) begin
                wr_tokens <= wr_tokens + RATE_NUM;
            end
            if (s_axi_bvalid && s_axi_bready) bq_rd <= bq_rd + 1;
        end
    end
endmodule
/* verilator lint_on UNUSEDSIGNAL */
