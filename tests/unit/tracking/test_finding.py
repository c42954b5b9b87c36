"""The finding of a task on either wire: where its text and its token usage are found."""

from __future__ import annotations

from khook_core.tracking.finding import MAX_FINDING_CHARS, of_task


def test_artifact_text_is_the_finding_on_either_wire() -> None:
    v1 = {"artifacts": [{"parts": [{"text": "Root cause:"}, {"text": "OOM"}]}]}
    v03 = {"artifacts": [{"parts": [{"kind": "text", "text": "Root cause:"}, {"kind": "data"}]}]}
    assert of_task(v1).text == "Root cause:\nOOM"
    assert of_task(v03).text == "Root cause:"


def test_without_artifacts_the_status_message_then_the_last_agent_message_is_taken() -> None:
    status = {"status": {"state": "failed", "message": {"parts": [{"text": "no access"}]}}}
    history = {
        "status": {"state": "TASK_STATE_COMPLETED"},
        "history": [
            {"role": "ROLE_USER", "parts": [{"text": "the prompt"}]},
            {"role": "ROLE_AGENT", "parts": [{"text": "first"}]},
            {"role": "agent", "parts": [{"kind": "text", "text": "last"}]},
            {"role": "user", "parts": [{"kind": "text", "text": "a follow-up"}]},
        ],
    }
    assert of_task(status).text == "no access"
    assert of_task(history).text == "last"
    assert of_task({"status": {"state": "completed"}}).text == ""


def test_a_long_finding_is_cut_and_its_full_length_kept() -> None:
    found = of_task({"artifacts": [{"parts": [{"text": "x" * 10_000}]}]})
    assert (len(found.text), found.chars) == (MAX_FINDING_CHARS, 10_000)
    assert found.text.endswith("…")


def test_token_usage_is_read_from_adk_and_openai_shaped_metadata() -> None:
    adk = {"metadata": {"kagent_usage_metadata": {"totalTokenCount": 1234.0}}}
    parts = {
        "status": {"message": {"metadata": {"usage": {"input_tokens": 10, "output_tokens": 5}}}}
    }
    artifact = {
        "artifacts": [
            {
                "parts": [],
                "metadata": {
                    "adk_usage_metadata": {"promptTokenCount": 7, "candidatesTokenCount": 3}
                },
            }
        ]
    }
    assert of_task(adk).tokens == "1234"
    assert of_task(parts).tokens == "15"
    assert of_task(artifact).tokens == "10"
    assert of_task({"metadata": {"usage": {"totalTokenCount": True}}}).tokens == ""
    assert of_task({"metadata": {"usage": {"total_tokens": 1.5}}}).tokens == ""
