from spojka.cli.main import run

run()
