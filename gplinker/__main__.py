from gplinker.cli import main

main()
