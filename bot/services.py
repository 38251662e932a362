"""The services a command or the Slack app works with, built once from the settings."""
from __future__ import annotations

from dataclasses import dataclass

from bot.classifier import Classifier
from bot.config import Settings
from bot.images import normalise, pixel_budget
from bot.models import Call, Image
from bot.pricing import PriceTable, load_price_table
from bot.prompt import PromptSet, load_prompt_set
from bot.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    prices: PriceTable
    prompt_set: PromptSet
    classifier: Classifier

    def normalise(self, data: bytes, name: str) -> Image:
        """Raises ImageError with a message for the person who sent the file."""
        return normalise(data, name, max_side=self.settings.max_image_side, max_pixels=self.settings.max_image_pixels,
                         budget=pixel_budget(self.settings.max_decode_pixels))

    def classify_bytes(self, data: bytes, name: str) -> tuple[Image, Call]:
        """Raises ImageError or ModelError."""
        image = self.normalise(data, name)
        return image, self.classifier.classify(image)

    def close(self) -> None:
        self.store.close()


def build_services(settings: Settings) -> Services:
    store = Store(settings.database_path)
    prices = load_price_table(settings.prices_file)
    prompt_set = load_prompt_set(settings.prompts_dir, settings.examples_dir,
                                 max_side=settings.max_image_side, max_pixels=settings.max_image_pixels)
    return Services(settings, store, prices, prompt_set, Classifier.from_settings(settings, prompt_set, store, prices))
