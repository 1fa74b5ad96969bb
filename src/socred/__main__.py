from socred.cli import main

main()
