"""Plots and units: pure (plain data in, figures or files out), shared by the run, its reports and the dashboard."""
