"""The two engines the store runs on: `sqlite` (the default, one file) and `postgres`
(`CHATOPS_DATABASE_URL`). Everything that differs between them is in these modules."""
