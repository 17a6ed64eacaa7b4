"""The declarative REST source (`type: rest`): JSON APIs described in syncline.yaml."""

from syncline.sources.rest.client import RestClient, parse_retry_after
from syncline.sources.rest.config import RestConfig
from syncline.sources.rest.source import RestSource

__all__ = ["RestClient", "RestConfig", "RestSource", "parse_retry_after"]
