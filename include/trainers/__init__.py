"""Example model code, written the way a model author writes it: plain functions, no platform imports."""
