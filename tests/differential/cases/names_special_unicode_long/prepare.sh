echo s > "with space.txt"
echo u > "日本語.txt"
echo e > "café-é.txt"
echo d > 'dollar$sign'
echo h > '#hash'
echo b > 'back\slash'
echo q > 'q"uote'
echo p > '%percent'
echo -- > ./-dash
long=$(printf 'n%.0s' $(seq 1 200))
echo l > "$long"
mkdir -p "$(printf 'd%.0s' $(seq 1 100))/$(printf 'e%.0s' $(seq 1 100))/$(printf 'f%.0s' $(seq 1 60))"
echo deep > "$(printf 'd%.0s' $(seq 1 100))/$(printf 'e%.0s' $(seq 1 100))/$(printf 'f%.0s' $(seq 1 60))/$(printf 'g%.0s' $(seq 1 150))"
ln -s "$long" "link-$(printf 'x%.0s' $(seq 1 120))"
