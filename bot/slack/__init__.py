"""The Slack side: the Bolt app, its listeners, file downloads and the process that serves it."""
