"""The sender of each channel type: the plain ones (channels.py) and the trackers (trackers.py)."""

from __future__ import annotations

from pydantic import BaseModel

from syncline.alerting.channels import EmailSender, Sender, SlackSender, WebhookSender
from syncline.alerting.trackers import GithubIssues, Jira
from syncline.alerting_config import (
    EmailChannel,
    GithubIssuesChannel,
    JiraChannel,
    SlackChannel,
    WebhookChannel,
)
from syncline.store.tickets import Tickets


def sender_for(cfg: BaseModel, channel: str = "", tickets: Tickets | None = None) -> Sender:
    """The sender of a channel; a tracker's needs the store's tickets (which it filed)."""
    if isinstance(cfg, (GithubIssuesChannel, JiraChannel)):
        if tickets is None:
            raise TypeError("a tracker needs the store's tickets")
        if isinstance(cfg, GithubIssuesChannel):
            return GithubIssues(channel, cfg, tickets)
        return Jira(channel, cfg, tickets)
    if isinstance(cfg, WebhookChannel):
        return WebhookSender(cfg)
    if isinstance(cfg, SlackChannel):
        return SlackSender(cfg)
    if isinstance(cfg, EmailChannel):
        return EmailSender(cfg)
    raise TypeError(f"no sender for {type(cfg).__name__}")
