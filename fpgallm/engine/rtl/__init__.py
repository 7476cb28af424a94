"""The decode-engine RTL (issue 7): execution units, register file, memory system, controller."""
