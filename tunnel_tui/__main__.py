from tunnel_tui.entry import main

main()
