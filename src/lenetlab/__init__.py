"""lenetlab: LeNet-5 and the classic CNNs on MNIST, from hand-written operators to a served model."""

__version__ = "0.1.0"
