"""Local stand-ins for third-party SaaS (Twilio, Slack) that speak their documented HTTP APIs."""
