echo built > out.txt
