"""`python -m vcyclectl` runs the same CLI as the console script."""

from vcyclectl.cli import main

if __name__ == "__main__":
    main()
