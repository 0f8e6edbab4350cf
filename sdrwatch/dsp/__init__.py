"""Pure numpy/scipy signal processing: arrays in, arrays or small dataclasses out. No files, sockets or clocks."""
