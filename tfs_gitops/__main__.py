from tfs_gitops.cli import main

main()
