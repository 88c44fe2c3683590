"""Analyses over fitted runs: the doubling claim, benchmark subsets, sensitivity, influence."""
