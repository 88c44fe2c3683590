from bayes_densing.cli.app import main

main()
