"""Plugins that import fine but break the contract in gencli.plugin."""

from dataclasses import dataclass, field


@dataclass
class Empty:
    pass


@dataclass
class ListOptions:
    layers: list = field(default_factory=lambda: [1, 2], metadata={"help": "Not a type a flag can have."})


class NoSample:
    """Modality and option classes are fine, but there is no sample() method."""

    name = "badcontract"
    modality = "text"
    summary = "Missing its sample method."
    Config = Empty
    TrainOptions = Empty
    SampleOptions = Empty
    EvalOptions = Empty
    presets = {}
    train_defaults = {}
    default_data = "none"
    bundled_weights = None

    def build(self, config):
        raise NotImplementedError

    def prepare(self, data, config, options):
        raise NotImplementedError

    def loss(self, model, batch, options):
        raise NotImplementedError

    def evaluate(self, model, config, options, request):
        raise NotImplementedError


class BadOption(NoSample):
    """Everything is there, but a sampling option is a list, which no --flag can hold."""

    name = "badoption"
    summary = "Has a list-typed sampling option."
    SampleOptions = ListOptions

    def sample(self, model, config, options, request):
        raise NotImplementedError


plugin = NoSample()
bad_option_plugin = BadOption()
