"""Configuration of the files source: glob patterns, formats and CSV options."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Format = Literal["csv", "jsonl", "parquet"]
_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                                  ".parquet": "parquet"}


def _infer_format(path: str) -> Format:
    fmt = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise ValueError(f"cannot tell the format of {path!r} from its extension; "
                         "set `format:` to csv, jsonl or parquet")
    return fmt


class CsvOptions(BaseModel):
    """How CSV files are parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    delimiter: str = Field(default=",", min_length=1, max_length=1, description="Field separator.")
    header: bool = Field(default=True, description="First line names the columns (else f0, f1, ...).")
    encoding: str = Field(default="utf-8", description="Text encoding; newline must be byte 0x0A.")
    null_values: list[str] = Field(default=[""], description="Unquoted values read as NULL.")

    @field_validator("encoding")
    @classmethod
    def _offset_safe(cls, value: str) -> str:
        try:
            newline = "\n".encode(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        if newline != b"\n":  # offsets are found by scanning bytes for 0x0A
            raise ValueError(f"encoding {value!r} is not supported; use utf-8, latin-1, cp1252, ...")
        return value


class FileStream(BaseModel):
    """One glob pattern, read as one stream."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(description="Glob pattern of the files; relative to the workspace folder.")
    format: Format | None = Field(None, description="csv, jsonl or parquet (default: extension).")
    primary_key: list[str] | None = Field(None, description="Key columns (default: _file, _line).")

    @model_validator(mode="after")
    def _known_format(self) -> FileStream:
        _ = self.fmt
        return self

    @property
    def fmt(self) -> Format:
        return self.format or _infer_format(self.path)


class FilesConfig(BaseModel):
    """Files in the workspace matched by glob patterns: CSV, JSON Lines or Parquet."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["files"] = Field(description="Source type.")
    path: str | None = Field(None, description="Glob pattern of the files of the one stream.")
    format: Format | None = Field(None, description="csv, jsonl or parquet (default: extension).")
    stream: str | None = Field(None, description="Stream name (default: the source's name).")
    primary_key: list[str] | None = Field(None, description="Key columns (default: _file, _line).")
    csv: CsvOptions = Field(default_factory=lambda: CsvOptions(), description="CSV parsing options.")
    require_files: bool = Field(
        False, description="A run that finds no file warns (the run ends `warning`); by default an "
        "emptied folder reads nothing and the run succeeds.")
    streams: dict[str, FileStream] | None = Field(
        None, description="Several patterns, one stream each, by stream name (instead of path).")

    @model_validator(mode="after")
    def _path_or_streams(self) -> FilesConfig:
        if (self.path is None) == (self.streams is None):
            raise ValueError("set exactly one of `path:` (one pattern) and `streams:` (several)")
        if self.streams is not None:
            misplaced = [k for k in ("format", "stream", "primary_key") if getattr(self, k) is not None]
            if misplaced:
                raise ValueError(f"with `streams:`, set {', '.join(misplaced)} inside each stream")
            if not self.streams:
                raise ValueError("`streams:` is empty; name at least one stream")
        elif self.format is None:
            _infer_format(self.path or "")
        return self

    def patterns(self, default_name: str) -> dict[str, FileStream]:
        if self.streams is not None:
            return dict(self.streams)
        one = FileStream(path=self.path or "", format=self.format, primary_key=self.primary_key)
        return {self.stream or default_name: one}


__all__ = ["CsvOptions", "FileStream", "FilesConfig", "Format"]
