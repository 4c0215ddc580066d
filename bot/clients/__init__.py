"""One thin adapter per outside system. Each turns its library's errors into bot.errors."""
