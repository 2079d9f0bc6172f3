from smoothie_cli.cli import main

main()
