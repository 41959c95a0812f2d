"""Looking at trained models and runs: the plots of a run (curves, confusion matrix, misclassified
examples, kernels, feature maps). Evaluation itself lives in :mod:`lenetlab.inference`."""
