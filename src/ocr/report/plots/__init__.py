"""Plots (matplotlib, Agg): one run's figures and the comparison overlays."""
