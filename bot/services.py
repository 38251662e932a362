"""The services a command or the Slack app works with, built once from the settings."""
from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path

from bot.breaker import BreakerPolicy
from bot.classifier import Classifier, ModelGateway, make_openai_client, model_options
from bot.config import Settings
from bot.images import Normalisation
from bot.models import Call, Image
from bot.pricing import PriceTable, load_price_table
from bot.prompt import PromptSet, load_prompt_set
from bot.provider import ModelService, ServicePolicy
from bot.store import Store, open_store


@dataclass
class Services:
    settings: Settings
    store: Store
    prices: PriceTable
    prompt_set: PromptSet
    classifier: Classifier

    def normalise(self, data: bytes, name: str) -> Image:
        """Raises ImageError with a message for the person who sent the file."""
        return normalisation(self.settings).apply(data, name)

    def classifier_for(self, prompts_dir: Path, model: str) -> Classifier:
        """Another prompt variant and model on the same gateway, store and prices (for comparisons);
        the bot's own prompt (PROMPTS_DIR) with the team's examples, as in Slack. Raises PromptError."""
        prompt_set = load_prompt_set(prompts_dir, self.settings.examples_dir, normalisation(self.settings))
        return Classifier(self.classifier.gateway, prompt_set, model_options(self.settings, model), store=self.store,
                          prices=self.prices, normalisation=normalisation(self.settings),
                          team_examples=team_examples(self.settings, prompts_dir))

    def classify_bytes(self, data: bytes, name: str) -> tuple[Image, Call]:
        """Raises ImageError or ModelError."""
        image = self.normalise(data, name)
        return image, self.classifier.classify(image)

    def close(self) -> None:
        self.store.close()


def normalisation(settings: Settings) -> Normalisation:
    return Normalisation(settings.max_image_side, settings.max_image_pixels, settings.image_resampling,
                         settings.jpeg_quality, settings.max_decode_pixels)


def team_examples(settings: Settings, prompts_dir: Path) -> int:
    """How many of the team's examples per category a prompt takes: the bot's own prompt takes
    MAX_EXAMPLES_PER_CATEGORY, another variant none (it is compared as its files are)."""
    return settings.max_examples_per_category if prompts_dir.resolve() == settings.prompts_dir.resolve() else 0


def model_service(settings: Settings, store: Store) -> ModelService:
    """The shared budget and breaker; it waits in place until the Slack app hands long waits to the queue."""
    breaker = BreakerPolicy(failures=settings.model_breaker_failures, probe_every=settings.model_probe_seconds,
                            probe_lease=settings.openai_timeout + 5)
    return ModelService(store, settings.openai_base_url, settings.openai_api_key,
                        ServicePolicy(settings.model_concurrency, breaker, settings.model_outage_max))


def build_services(settings: Settings) -> Services:
    store = open_store(settings.database_url, pool_size=settings.database_pool_size,
                       wait_seconds=settings.database_wait_seconds)
    prices = load_price_table(settings.prices_file)
    prompt_set = load_prompt_set(settings.prompts_dir, settings.examples_dir, normalisation(settings))
    gateway = ModelGateway(make_openai_client(settings), api=settings.openai_api,
                           concurrency=settings.model_concurrency, service=model_service(settings, store),
                           max_retries=settings.openai_max_retries)
    classifier = Classifier(gateway, prompt_set, model_options(settings), store=store, prices=prices,
                            normalisation=normalisation(settings),
                            team_examples=team_examples(settings, settings.prompts_dir))
    return Services(settings, store, prices, prompt_set, classifier)
