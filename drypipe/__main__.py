from drypipe.cli.main import main

main()
