"""Where IQ comes from: one ``Source`` interface with rtlsdr, rtl_tcp, file and sim backends."""
from .base import Block, Source, SourceInfo, open_source

__all__ = ["Block", "Source", "SourceInfo", "open_source"]
