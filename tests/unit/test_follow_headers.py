from jobs.api import follow_headers


def test_polling_only_without_websocket():
    assert follow_headers(2, None, "j") == {"Retry-After": "2"}


def test_websocket_stacks_link_the_subscription_url():
    headers = follow_headers(2, "wss://abc.execute-api.eu-west-1.amazonaws.com/v1", "5f0c")
    assert headers["Retry-After"] == "2"  # pollers keep working
    assert headers["Link"] == '<wss://abc.execute-api.eu-west-1.amazonaws.com/v1?job_id=5f0c>; rel="monitor"'
