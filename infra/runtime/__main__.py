from infra.runtime.supervisor import main

main()
