from repowire.cli import main

main()
