"""The README's example consumer config is what a new user copies: it must load."""

from __future__ import annotations

import re
from pathlib import Path

from sdstream import settings

README = Path(__file__).resolve().parents[3] / "README.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(), re.DOTALL)


def test_the_example_consumer_config_loads(tmp_path: Path) -> None:
    example = next(b for b in yaml_blocks() if b.startswith("kafka:"))
    config = tmp_path / "consumer.yml"
    config.write_text(example)

    loaded = settings.load(settings.ConsumerAppSettings, config_file=config)

    assert [job.job_name for job in loaded.scrape_configs] == ["pods"]
    assert loaded.scrape_configs[0].cluster_label == "k8s_cluster"


def test_the_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["scripts/demo", "scripts/test"]
    assert "exec scripts/test" in (README.parent / ".ci" / "run").read_text()
