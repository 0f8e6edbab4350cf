"""What people look at: the console (Textual), plots (matplotlib Agg), the duty report and the seal.

Everything here reads what the lower layers produced (recordings, baselines, spectrum logs, the
collector's database) and never changes it.
"""
