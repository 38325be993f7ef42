"""The settings object: what it shows of the secrets it holds."""

from bot.settings import Settings


def test_repr_and_str_mask_keys_and_url_credentials():
    settings = Settings(
        LLM_BASE_URL="https://reader:pw-llm-0451@llm.example/v1",
        LLM_MODEL="m",
        LLM_API_KEY="sk-key-0451",
        CITEBOT_EMBEDDING_BACKEND="http",
        CITEBOT_EMBEDDING_URL="http://tok-embed-0451@127.0.0.1:9/v1",
    )
    for shown in (repr(settings), str(settings)):
        assert "0451" not in shown
        assert "https://***@llm.example/v1" in shown
        assert "http://***@127.0.0.1:9/v1" in shown
    assert {"pw-llm-0451", "sk-key-0451", "tok-embed-0451"} <= set(settings.secrets())
    assert settings.llm_base_url == "https://reader:pw-llm-0451@llm.example/v1"  # used as given
