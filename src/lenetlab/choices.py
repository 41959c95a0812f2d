"""The choices of command-line options that the code also checks (dataset names, ``--normalize``,
``--device``, ``--select``, ``--tta``): plain constants, importing nothing, so ``lenet --help`` builds
its parser without torch."""

#: The dataset names :func:`lenetlab.data.load` knows (any other dataset is a path).
NAMED_DATASETS = ("mnist-subset", "mnist", "fashion-mnist")

#: The fixed normalisations, ``name: (mean, std)`` in [0, 1] pixel units, the same for every channel.
FIXED_NORMS = {
    "half": (0.5, 0.5),  # (x - 0.5) / 0.5: [-1, 1], as Normalize(127.5, 127.5) on 0..255 pixels
    "mnist": (0.1307, 0.3081),  # the MNIST training set's statistics
    "none": (0.0, 1.0),  # x in [0, 1]
    # NNDL's pipeline: ToTensor() (x/255) then Normalize(127.5, 127.5), inputs squeezed into [-1, -0.992]
    "nndl-quirk": (127.5, 127.5),
    # LeCun et al. 1998, sec. II-B: background -0.1 and ink 1.175, i.e. x * 1.275 - 0.1
    "lecun1998": (0.1 / 1.275, 1 / 1.275),
}
#: Every ``--normalize`` value, on every command: the dataset's default, the train split's statistics,
#: or one of :data:`FIXED_NORMS`.
NORMALIZE_CHOICES = ("default", "stats", *FIXED_NORMS)


#: ``--device`` values: the best this machine has (CUDA, then MPS, then CPU), or one by name.
DEVICES = ("auto", "cpu", "cuda", "mps")

#: ``--select`` rules: cross-validated choice between the other two, greedy forward selection, every candidate.
SELECT_RULES = ("auto", "greedy", "all")

#: ``--tta`` modes: never, always, or when it scores better on the dev split.
TTA_MODES = ("off", "on", "auto")
