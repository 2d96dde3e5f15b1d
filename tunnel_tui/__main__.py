from tunnel_tui.cli import main

main()
