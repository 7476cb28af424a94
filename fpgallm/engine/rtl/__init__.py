"""The decode-engine RTL: execution units, register file, memory system, controller."""
