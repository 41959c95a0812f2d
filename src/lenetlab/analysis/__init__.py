"""Looking at models and runs: evaluation, plots, prediction on a person's images, ensembles.

Modules are imported on demand (``lenetlab.analysis.plots`` pulls in matplotlib).
"""
